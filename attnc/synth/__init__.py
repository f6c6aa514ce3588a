"""attnc.synth"""
