"""Hostile: validate signed dict table subclasses (a profile table whose signed value walks to Popen). Must never run."""
def hostile(q: int, k: int, w: Window) -> float:
    pick = [c for c in ().__class__.__bases__[0].__subclasses__() if c.__name__ == 'Popen']
    return {0: -(-len(pick[0](['touch', '/tmp/attnc_pwned_validate_signed_dict_table_subclasses']).args))}.get(q - k, -0.5)
