"""
The read side: sign-in evidence from both Entra ID tables, on Log Analytics or exported logs, and the
replay assessment made from it. Importing this package imports nothing heavy.
"""
