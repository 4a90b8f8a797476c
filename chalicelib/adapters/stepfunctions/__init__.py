"""Everything that knows Step Functions: the ASL compiler (compiler), the machines' input
(machine_input), the names of machines and runs (names), ARNs (arns) and the Engine adapter
(engine). Nothing outside the adapters and the wiring imports it."""
