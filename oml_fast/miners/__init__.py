"""oml_fast.miners"""
