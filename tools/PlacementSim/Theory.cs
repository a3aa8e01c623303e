namespace Wharf.PlacementSim;

/// <summary>What the placement should give if scores are ideal random draws: the yardstick the figures are read against.</summary>
public static class Theory
{
    /// <summary>
    /// The probability that a node of weight <paramref name="weight"/> is among a shard's top R, without zones.
    /// Score −w / ln(u) orders nodes as the arrival times T = −ln(u) / w ~ Exp(w) (earliest first), so the owners are
    /// the first R arrivals of independent exponential clocks:
    /// P = ∫ w e^(−w t) · P(fewer than R other clocks fired by t) dt, the other clocks counted per weight class as
    /// binomials (Simpson's rule; exact up to quadrature error, &lt; 1e-9 here).
    /// </summary>
    public static double TopRProbability(double weight, IReadOnlyList<(double Weight, int Count)> others, int r)
    {
        var rate = others.Sum(c => c.Weight * c.Count);
        var end = 80.0 / Math.Max(rate, weight);
        const int Steps = 40_000;
        var h = end / Steps;
        double sum = 0;
        for (var i = 0; i <= Steps; i++)
        {
            var t = i * h;
            var f = weight * Math.Exp(-weight * t) * FewerThan(r, others, t);
            sum += f * (i == 0 || i == Steps ? 1 : i % 2 == 1 ? 4 : 2);
        }
        return sum * h / 3;
    }

    /// <summary>P(fewer than r of the clocks have fired by t): the binomials' pmfs convolved, truncated below r.</summary>
    private static double FewerThan(int r, IReadOnlyList<(double Weight, int Count)> classes, double t)
    {
        Span<double> total = stackalloc double[r];
        total.Clear();
        total[0] = 1;
        Span<double> pmf = stackalloc double[r];
        Span<double> next = stackalloc double[r];
        foreach (var (w, n) in classes)
        {
            var fired = -double.ExpM1(-w * t);
            for (var k = 0; k < r; k++)
            {
                pmf[k] = k > n ? 0 : Choose(n, k) * Math.Pow(fired, k) * Math.Exp(-w * t * (n - k));
            }
            next.Clear();
            for (var a = 0; a < r; a++)
            {
                for (var b = 0; a + b < r; b++)
                {
                    next[a + b] += total[a] * pmf[b];
                }
            }
            next.CopyTo(total);
        }
        double p = 0;
        foreach (var x in total)
        {
            p += x;
        }
        return p;
    }

    private static double Choose(int n, int k)
    {
        double c = 1;
        for (var i = 0; i < k; i++)
        {
            c = c * (n - i) / (i + 1);
        }
        return c;
    }

    /// <summary>
    /// Coefficient of variation of a node's load when it holds each shard independently with probability p and
    /// shard s carries load x_s (1 for shards, its keys, its bytes): √((1 − p) · Σx² / (p · (Σx)²)).
    /// Shards are hashed independently, so this is exact for the spread across equal nodes.
    /// </summary>
    public static double Cv(double p, long[] load)
    {
        double sum = 0, squares = 0;
        foreach (var x in load)
        {
            sum += x;
            squares += (double)x * x;
        }
        return Math.Sqrt((1 - p) * squares / (p * sum * sum));
    }
}
