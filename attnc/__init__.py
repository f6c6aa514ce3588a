"""attnc: explain transformer attention heads with small, safe, executable programs."""

__version__ = "0.1.0"
