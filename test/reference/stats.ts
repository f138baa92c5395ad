// Goodness of fit for the sampling tests: Pearson's chi-square of observed counts against
// expected probabilities, and its critical value.

/** Pearson's statistic Σ (observed − n·p)² / (n·p) over categories with p > 0, and the degrees of freedom. */
export function chiSquare(counts: ArrayLike<number>, probs: ArrayLike<number>): { statistic: number; df: number } {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i];
  let statistic = 0;
  let categories = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] <= 0) continue;
    const e = n * probs[i];
    statistic += (counts[i] - e) ** 2 / e;
    categories++;
  }
  return { statistic, df: categories - 1 };
}

/**
 * Upper critical value of chi-square with `df` degrees of freedom for a one-sided normal quantile z
 * (Wilson–Hilferty: (χ²/df)^(1/3) is close to normal). z = 4.75 is a false-alarm rate of 1e-6.
 */
export function chiSquareCritical(df: number, z = 4.75): number {
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}
