"""The tasks sb3-iql knows by name: their maps, constants and evaluation envs. The lowest layer: it imports no other."""
