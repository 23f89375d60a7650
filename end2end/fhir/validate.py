"""Validates every FHIR Bundle the tests left in a folder against the FHIR specification.

Run by `make test` after the Rust tests (which write their Bundles to $BIOVIEWER_FHIR_OUT):
    python validate.py FOLDER [MIN_COUNT]
Each file must parse as a Bundle with the models of `fhir.resources` (a maintained library
generated from the specification's StructureDefinitions: cardinalities, types, value-set-bound
primitive regexes such as dateTime's, unknown elements refused).
The R4B models are used: R4B changed none of the resources we write (Patient, Observation,
DiagnosticReport, Bundle, CapabilityStatement, OperationOutcome) from R4 4.0.1.
Exits 1 on the first invalid file, or when fewer than MIN_COUNT files were found (a test that
wrote nothing must not pass for a valid one).
"""

import json
import pathlib
import sys

from fhir.resources.R4B import get_fhir_model_class


def main() -> int:
    folder = pathlib.Path(sys.argv[1])
    minimum = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if len(files) < minimum:
        print(f"fhir validation: {len(files)} file(s) in {folder}, expected at least {minimum}")
        return 1
    failed = 0
    resources = 0
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        kind = data.get("resourceType", "")
        try:
            model = get_fhir_model_class(kind).model_validate(data)
        except Exception as error:  # the library's validation error names the element
            failed += 1
            print(f"INVALID {path.name}: {error}")
            continue
        resources += len(getattr(model, "entry", None) or []) or 1
    print(f"fhir validation: {len(files) - failed} passed, {failed} failed ({resources} resources)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
