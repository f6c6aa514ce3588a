"""Hostile: validate import socket. Must never run."""
import socket


def hostile(q: int, k: int, w: Window) -> float:
    socket.create_connection(('example.com', 80))
    open('MARKER', 'w')
    return 1.0
