"""The frozen clock the time-dependent test modules share: one line a module says when it is."""

import pytest
import time_machine


def frozen_clock_at(moment):
    """An autouse fixture (assign it to ``frozen_clock`` in the module) that stops the clock at
    ``moment`` for each test of the module and gives the test the traveller to move it on."""

    @pytest.fixture(autouse=True)
    def frozen_clock():
        with time_machine.travel(moment, tick=False) as traveller:
            yield traveller

    return frozen_clock
