/* Folding an inference-mode BatchNormalization into the Gemm/MatMul layer in front of it:
 * y = gamma (W x + b - mean) / sqrt(var + eps) + beta is again an affine map. Computed in
 * double and rounded once, so the folded weights are the nearest floats to the exact ones. */
#include "onnx_util.h"
#include <math.h>

void onnx_fold_bn(float *W, float *b, int n_out, int n_in, const float *gamma,
                  const float *beta, const float *mean, const float *var, double eps)
{
    for (int i = 0; i < n_out; i++) {
        double s = (double)gamma[i] / sqrt((double)var[i] + eps);
        float *row = W + (size_t)i * n_in;
        for (int j = 0; j < n_in; j++)
            row[j] = (float)(s * (double)row[j]);
        b[i] = (float)(s * ((double)b[i] - (double)mean[i]) + (double)beta[i]);
    }
}
