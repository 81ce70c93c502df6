"""oml_fast.distributed"""
