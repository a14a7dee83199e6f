#include <libpq-fe.h>
// PG_DIAG_* are character macros Swift does not import.
static const int LOCKPROOF_PG_DIAG_SQLSTATE = 'C';
static const int LOCKPROOF_PG_DIAG_MESSAGE_PRIMARY = 'M';
static const int LOCKPROOF_PG_DIAG_CONSTRAINT_NAME = 'n';
static const int LOCKPROOF_PG_DIAG_SEVERITY = 'S';
