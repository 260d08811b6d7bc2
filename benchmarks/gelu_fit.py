"""Fit the polynomial of functional._gelu_float32: python benchmarks/gelu_fit.py prints its coefficients.

_gelu_float32 computes gelu(x) = relu(x) - |x| Phi(-|x|) with
    |x| Phi(-|x|) = (|x|/2) t exp(P(t) - x^2/2),    t = K / (K + |x|/2),
so P(t) = ln(2 Phi(-a) / t) + a^2/2 for a = |x|: a smooth function of t in (0, 1], fitted here by a polynomial of
degree DEGREE. The fit is minimax (Lawson's iteration of weighted least squares, on a Chebyshev basis for
conditioning), with the error weighted as tests/test_functional.py bounds it: uniformly for |x| <= 3.4, and
relaxed as (3.4 / a)^2 beyond, where the test's bound on the negative tail grows with x^2. It runs to a = 13.2,
where gelu(x) leaves float32's normal range. K was chosen by scanning (`--scan`): the error is far from monotone in
K, and K = 1.55 gave the smallest at degree 7 (1.1e-7 in the exponent, as Numerical Recipes' degree-9 erfc fit
reaches at K = sqrt(2)). Only NumPy and math.erfc (float64) are used: no download, no SciPy.
"""

import argparse
import math

import numpy as np

DEGREE = 7
K = 1.55
A_MAX = 13.2  # gelu(-13.2) is below float32's smallest normal number
TAIL_START = 3.4  # tests/test_functional.py: GELU_F32_TAIL_START


def exponent(a: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """t and P(t) = ln(2 Phi(-a) / t) + a^2 / 2 in float64, through math.erfc (relative precision down the tail)."""
    t = k / (k + a / 2)
    phi_minus = np.array([0.5 * math.erfc(v / math.sqrt(2)) for v in a])
    return t, np.log(2 * phi_minus / t) + a * a / 2


def fit(degree: int, k: float, points: int = 40_001, iterations: int = 60) -> tuple[np.ndarray, float]:
    """Monomial coefficients c0..c_degree of P(t), and the largest weighted error on the grid."""
    a = np.linspace(0, A_MAX, points)
    weight = np.minimum(1.0, (TAIL_START / np.maximum(a, TAIL_START)) ** 2)
    t, target = exponent(a, k)
    basis = np.polynomial.chebyshev.chebvander(2 * t - 1, degree)  # t in (0, 1] -> [-1, 1]
    lawson = np.full(a.size, 1 / a.size)
    for _ in range(iterations):
        w = np.sqrt(lawson) * weight
        coefficients, *_ = np.linalg.lstsq(basis * w[:, None], target * w, rcond=None)
        error = np.abs(basis @ coefficients - target) * weight
        lawson *= error
        lawson /= lawson.sum()
    monomial = np.polynomial.Chebyshev(coefficients, domain=[0, 1]).convert(kind=np.polynomial.Polynomial).coef
    return monomial, float(error.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--degree", type=int, default=DEGREE)
    parser.add_argument("--k", type=float, default=K)
    parser.add_argument("--scan", action="store_true", help="try K from 0.5 to 3.0 and print each one's error")
    args = parser.parse_args()
    if args.scan:
        for k in np.arange(0.5, 3.0001, 0.05):
            print(f"degree {args.degree}  K {k:.2f}  weighted max error {fit(args.degree, k, 8001)[1]:.3g}")
        return
    coefficients, error = fit(args.degree, args.k)
    print(f"# degree {args.degree}, K = {args.k}: weighted max error {error:.3g} in the exponent")
    print("_GELU_P = (")
    for c in coefficients:
        print(f"    {float(c)!r},")
    print(")")


if __name__ == "__main__":
    main()
