"""attnc.study"""
