
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_FILTER_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_FILTER_H_INCLUDED_


#include "ngx_http_apipolicy.h"


ngx_int_t ngx_http_apipolicy_filter_init(ngx_conf_t *cf);


#endif /* _NGX_HTTP_APIPOLICY_FILTER_H_INCLUDED_ */
