"""attnc.dsl"""
