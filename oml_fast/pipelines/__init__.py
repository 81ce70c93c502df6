"""oml_fast.pipelines"""
