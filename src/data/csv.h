/* Numeric CSV files (internal to the data module). */
#ifndef ECP_CSV_H
#define ECP_CSV_H
#include "../internal.h"

/* Reads a numeric CSV: target_cols = "0,3" (negative counts from the end), NULL = the last. */
ecp_status ecp_csv_read(const char *path, const char *target_cols, ecp_dataset **out,
                        ecp_error *err);
#endif
