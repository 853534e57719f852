
/*
 * Copyright (C) apipolicy authors
 *
 * TAP output for the unit tests of t/unit: ok() a test, done() the plan
 * and the exit status.
 */


#ifndef _APIPOLICY_TAP_H_INCLUDED_
#define _APIPOLICY_TAP_H_INCLUDED_


#include <stdarg.h>
#include <stdio.h>


static int  tap_tests, tap_failed;


static void
ok(int cond, const char *fmt, ...)
{
    va_list  ap;

    tap_tests++;

    if (!cond) {
        tap_failed++;
        printf("not ");
    }

    printf("ok %d - ", tap_tests);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}


static int
done(void)
{
    printf("1..%d\n", tap_tests);

    return tap_failed ? 1 : 0;
}


#endif /* _APIPOLICY_TAP_H_INCLUDED_ */
