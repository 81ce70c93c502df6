"""oml_fast.metrics"""
