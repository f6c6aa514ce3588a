"""attnc.runtime"""
