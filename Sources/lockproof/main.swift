print("lockproof")
