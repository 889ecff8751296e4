import MixMoE
print("placeholder")
