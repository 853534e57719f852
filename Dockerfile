# apipolicy on Debian's nginx, built from Debian's archive only.
#
#   docker build -t apipolicy .
#   docker run --rm -p 8080:8080 apipolicy
#
# The runtime image serves conf-examples/gateway.conf; mount your own
# nginx.conf over /etc/nginx/nginx.conf (keep the load_module line).

FROM debian:bookworm AS build

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       build-essential nginx nginx-dev libjwt-dev libjansson-dev \
       libhiredis-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY config Makefile ngx_http_apipolicy_module.c ./
COPY src/ src/
COPY util/ util/

# "module" builds without the package check (the packages are installed)
RUN make module


FROM debian:bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       nginx libjwt0 libjansson4 libhiredis0.14 libssl3 \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /src/build/nginx/objs/ngx_http_apipolicy_module.so \
     /usr/lib/nginx/modules/ngx_http_apipolicy_module.so
COPY conf-examples/ /etc/nginx/apipolicy/

RUN printf '%s\n' \
      'load_module /usr/lib/nginx/modules/ngx_http_apipolicy_module.so;' \
      'error_log stderr notice;' \
      'pid /run/nginx.pid;' \
      'include /etc/nginx/apipolicy/gateway.conf;' \
      > /etc/nginx/nginx.conf \
    && sed -i 's/listen 127.0.0.1:8080;/listen 8080;/' \
           /etc/nginx/apipolicy/gateway.conf \
    && nginx -t

EXPOSE 8080
CMD ["nginx", "-g", "daemon off;"]
