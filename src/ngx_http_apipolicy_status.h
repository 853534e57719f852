
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_STATUS_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_STATUS_H_INCLUDED_


#include "ngx_http_apipolicy.h"


/* apipolicy_status [json|prometheus] (location): the content handler */
char *ngx_http_apipolicy_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* the counters' zone, when any apipolicy directive is used */
ngx_int_t ngx_http_apipolicy_status_postconfiguration(ngx_conf_t *cf);

/* LOG phase: what this request met, counted once */
ngx_int_t ngx_http_apipolicy_status_log(ngx_http_request_t *r);


#endif /* _NGX_HTTP_APIPOLICY_STATUS_H_INCLUDED_ */
