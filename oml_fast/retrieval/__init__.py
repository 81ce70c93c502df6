"""oml_fast.retrieval"""
