"""Built-in V2I mmWave simulator: vehicle passes at a 60 GHz, 64-beam base station, written in the
DeepSense 6G layout (numpy only, seeded and deterministic).

``simulate_scenario(PRESETS["suburban"], num_sequences=40, seed=0)`` returns a ``SimulatedScenario``;
``write_scenario_folder(sim, folder, sensors=SENSORS)`` writes it, with camera frames, LiDAR scans and CSI
if asked; ``wmlm data synth`` does both from the command line.
"""

from wmlm.data.sim.preset import PRESETS, ScenarioPreset
from wmlm.data.sim.scenario import SimulatedScenario, simulate_scenario
from wmlm.data.sim.writer import SENSORS, write_scenario_folder

__all__ = [
    "PRESETS",
    "SENSORS",
    "ScenarioPreset",
    "SimulatedScenario",
    "simulate_scenario",
    "write_scenario_folder",
]
