"""numpy job functions for the process-lane figure (issue 11).

Imports numpy at the top: a sub-interpreter refuses to import it, so the
daemon runs these in its process lane (the job's argument, a numpy array,
names the module numpy, which routes it there with no option given).
``ProcessPoolExecutor`` and the peers run the very same functions.
"""

import numpy


def decimate(signal):
    """The signal low-pass filtered and resampled at an eighth of its rate,
    by FFT: a few ms of numpy for 64k float64 samples; an array in (512
    KiB), an array out (64 KiB)."""
    spectrum = numpy.fft.rfft(signal)
    kept = len(signal) // 16 + 1  # the lowest eighth of the frequencies
    return numpy.fft.irfft(spectrum[:kept], n=len(signal) // 8) / 8


def total(values):
    """The tiny numpy job of the round trip: a sum of a small array."""
    return values.sum()
