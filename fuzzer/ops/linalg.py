"""(being written)"""
SPECS = []
