/* Losses. Per-sample values are summed in double: a test set of 10^4 samples in float would
 * lose digits that the pruning comparisons care about. */
#include "../internal.h"
#include <math.h>

double ecp_log_sum_exp(const float *y, int k)
{
    /* shifted by the max so that exp never overflows */
    float mx = y[0];
    for (int j = 1; j < k; j++)
        mx = y[j] > mx ? y[j] : mx;
    double se = 0;
    for (int j = 0; j < k; j++)
        se += exp((double)y[j] - mx);
    return mx + log(se);
}

void ecp_softmax(const float *y, int k, float *p)
{
    double lse = ecp_log_sum_exp(y, k);
    for (int j = 0; j < k; j++)
        p[j] = (float)exp((double)y[j] - lse);
}

double ecp_loss_eval(ecp_loss kind, const float *y, const float *t, const int32_t *labels,
                     int batch, int k, float scale, float *dy)
{
    if (batch > 0 && (!y || (kind == ECP_LOSS_XENT ? !labels : !t)))
        return NAN;
    double total = 0;
    for (int n = 0; n < batch; n++) {
        const float *yn = y + (size_t)n * k;
        float *dn = dy ? dy + (size_t)n * k : NULL;
        if (kind == ECP_LOSS_MSE) {
            const float *tn = t + (size_t)n * k;
            double s = 0;
            for (int j = 0; j < k; j++) {
                double d = (double)yn[j] - tn[j];
                s += d * d;
                if (dn)
                    dn[j] = (float)(scale * 2.0 * d / k);
            }
            total += s / k;
        } else {
            double lse = ecp_log_sum_exp(yn, k);
            int c = labels[n];
            total += lse - yn[c];
            if (dn) {
                for (int j = 0; j < k; j++)
                    dn[j] = (float)(scale * exp((double)yn[j] - lse));
                dn[c] -= scale;
            }
        }
    }
    return total;
}
