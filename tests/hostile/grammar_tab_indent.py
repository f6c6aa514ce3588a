def hostile(q: int, k: int, w: Window) -> float:
	open('/tmp/attnc_pwned_tab', 'w')
	return 1.0
