"""numpy job functions for the process-lane figure (issue 11).

Imports numpy at the top: a sub-interpreter refuses to import it, so the
daemon runs these in its process lane (the job's argument, a numpy array,
names the module numpy, which routes it there with no option given).
``ProcessPoolExecutor`` and the peers run the very same functions.
"""

import numpy


def low_pass(signal):
    """The signal with its top seven eighths of frequencies removed, by FFT:
    a few ms of numpy for 64k float64 samples; an array in, an array out."""
    spectrum = numpy.fft.rfft(signal)
    spectrum[len(spectrum) // 8:] = 0
    return numpy.fft.irfft(spectrum, n=len(signal))


def total(values):
    """The tiny numpy job of the round trip: a sum of a small array."""
    return values.sum()
