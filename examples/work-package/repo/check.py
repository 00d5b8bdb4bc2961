"""The package's check: each feature is tested once it exists (exit 0: all present features work)."""

import importlib.util
import sys

failures = []
import temperature  # noqa: E402

if hasattr(temperature, "c_to_f") and (temperature.c_to_f(100) != 212 or temperature.c_to_f(0) != 32):
    failures.append("c_to_f is wrong")
if importlib.util.find_spec("kelvin") is not None:
    import kelvin

    if abs(kelvin.c_to_k(0) - 273.15) > 1e-9:
        failures.append(f"c_to_k(0) should be 273.15, got {kelvin.c_to_k(0)}")
for failure in failures:
    print("FAIL:", failure)
print("ok" if not failures else f"{len(failures)} failed")
sys.exit(1 if failures else 0)
