
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_PHASE_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_PHASE_H_INCLUDED_


#include "ngx_http_apipolicy.h"


ngx_int_t ngx_http_apipolicy_preaccess_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_apipolicy_access_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_apipolicy_precontent_handler(ngx_http_request_t *r);

ngx_int_t ngx_http_apipolicy_phase_init(ngx_conf_t *cf);


#endif /* _NGX_HTTP_APIPOLICY_PHASE_H_INCLUDED_ */
