def greeting() -> str:
    return "from the layer"
