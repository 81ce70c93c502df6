"""oml_fast.losses"""
