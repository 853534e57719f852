# apipolicy on Debian's nginx, built from Debian's archive only.
#
#   docker build -t apipolicy .
#   docker run --rm -p 8080:8080 apipolicy
#   docker compose up --build        # the same, with a Redis (compose.yaml)
#
# The image serves conf-examples/gateway.conf on port 8080 and runs alone:
# without a Redis the rate limits hold per gateway (the log says so once).
# Layout: the module in /usr/lib/nginx/modules, the examples in
# /etc/nginx/apipolicy/, their keys in /etc/nginx/keys/ (a relative
# "file:keys/..." resolves against the directory of nginx.conf), and
# docker/nginx.conf as /etc/nginx/nginx.conf: mount your own over it (keep
# its load_module line) or over /etc/nginx/apipolicy/.
# "make test-docker" replays this runtime stage into a temporary root and
# runs nginx -t there: keep its steps to COPY, sed -i and nginx -t.

FROM debian:bookworm AS build

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       build-essential nginx nginx-dev libjansson-dev libhiredis-dev \
       libssl-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY config Makefile ngx_http_apipolicy_module.c ./
COPY src/ src/
COPY util/ util/

# "module" builds without the package check (the packages are installed)
RUN make module


FROM debian:bookworm

# the module's run-time libraries (no libjwt: the module has its own JWS
# code)
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       nginx libjansson4 libhiredis0.14 libssl3 \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /src/build/nginx/objs/ngx_http_apipolicy_module.so /usr/lib/nginx/modules/
COPY conf-examples/*.conf /etc/nginx/apipolicy/
COPY conf-examples/keys/ /etc/nginx/keys/
COPY docker/nginx.conf /etc/nginx/nginx.conf

# the example listens on 127.0.0.1 for "make run"; here on every address
RUN sed -i 's/listen 127.0.0.1:8080;/listen 8080;/' /etc/nginx/apipolicy/gateway.conf

RUN nginx -t

EXPOSE 8080
CMD ["nginx", "-g", "daemon off;"]
