def run(cfg):
    pass
