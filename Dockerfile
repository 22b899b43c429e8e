# Container images of `contour` and `contour-operator`, from one build:
#   docker build --target contour          -t ghcr.io/contour-rs/contour:v0.1.0 .
#   docker build --target contour-operator -t ghcr.io/contour-rs/contour-operator:v0.1.0 .
# The runtime stages are distroless (glibc, CA certificates, no shell) and run
# as the unprivileged user 65532; the operator's rendered pods call `contour`
# by name, so it lives on PATH.

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p contour -p contour-operator \
    && install -D -m 0755 target/release/contour /out/contour \
    && install -D -m 0755 target/release/contour-operator /out/contour-operator

FROM gcr.io/distroless/cc-debian12:nonroot AS contour
COPY --from=build /out/contour /usr/local/bin/contour
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/contour"]

FROM gcr.io/distroless/cc-debian12:nonroot AS contour-operator
COPY --from=build /out/contour-operator /usr/local/bin/contour-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/contour-operator"]
