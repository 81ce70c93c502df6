"""oml_fast.models"""
