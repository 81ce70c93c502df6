"""oml_fast.samplers"""
