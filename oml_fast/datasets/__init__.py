"""oml_fast.datasets"""
