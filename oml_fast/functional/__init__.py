"""oml_fast.functional"""
