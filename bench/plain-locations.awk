# bench/locations.conf -> the same locations with no apipolicy directive,
# for the plain-nginx twin of the gateway: plain proxying of the same
# request, the same URI matched against the same locations.
/^location / { print "location " $2 " { proxy_pass http://app; }" }
