"""attnc.compiler"""
