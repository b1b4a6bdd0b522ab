# inferops production image (ROCm, MI300X): the ROCm SGLang image plus what the seed's E1 image
# added by hand, pinned: Mooncake built from source for HIP with etcd support, etcd, RDMA
# userspace (optionally Mellanox OFED userspace) and sglang-router. Every download is https
# with TLS verification and, where it is not a git commit, a sha256 check.
# Rendered from roles/image/templates/Dockerfile.j2 (profile rocm): edit the role's variables.
FROM lmsysorg/sglang:v0.5.2rc1-rocm700-mi30x
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG DEBIAN_FRONTEND=noninteractive
WORKDIR /sgl-workspace

# RDMA userspace and tools (the base image's Ubuntu packages; versions follow the base).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl git \
      rdma-core ibverbs-utils perftest infiniband-diags rdmacm-utils librdmacm-dev libibverbs-dev ethtool \
 && rm -rf /var/lib/apt/lists/*

# Mellanox OFED userspace 5.9-0.5.6.0.127 (ubuntu22.04), user space only.
RUN curl -fsSL --proto '=https' --tlsv1.2 -o /tmp/ofed.tgz https://content.mellanox.com/ofed/MLNX_OFED-5.9-0.5.6.0.127/MLNX_OFED_LINUX-5.9-0.5.6.0.127-ubuntu22.04-x86_64.tgz \
 && echo "abababababababababababababababababababababababababababababababab  /tmp/ofed.tgz" | sha256sum -c - \
 && mkdir /tmp/ofed && tar -xzf /tmp/ofed.tgz -C /tmp/ofed --strip-components=1 \
 && /tmp/ofed/mlnxofedinstall --user-space-only --without-fw-update --without-neohost-backend --force \
 && rm -rf /tmp/ofed /tmp/ofed.tgz /var/lib/apt/lists/*

# Go 1.23.8 for Mooncake's etcd wrapper (dependencies.sh then finds it and skips its own download).
RUN curl -fsSL --proto '=https' --tlsv1.2 -o /tmp/go.tgz https://dl.google.com/go/go1.23.8.linux-amd64.tar.gz \
 && echo "45b87381172a58d62c977f27c4683c8681ef36580abecd14fd124d24ca306d3f  /tmp/go.tgz" | sha256sum -c - \
 && rm -rf /usr/local/go \
 && tar -xzf /tmp/go.tgz -C /usr/local \
 && rm /tmp/go.tgz
ENV PATH=/usr/local/go/bin:$PATH

# etcd 3.6.4: etcd, etcdctl, etcdutl in /usr/local/bin.
RUN curl -fsSL --proto '=https' --tlsv1.2 -o /tmp/etcd.tgz https://github.com/etcd-io/etcd/releases/download/v3.6.4/etcd-v3.6.4-linux-amd64.tar.gz \
 && echo "4d5f3101daa534e45ccaf3eec8d21c19b7222db377bcfd5e5a9144155238c105  /tmp/etcd.tgz" | sha256sum -c - \
 && tar -xzf /tmp/etcd.tgz -C /usr/local/bin --strip-components=1 \
      etcd-v3.6.4-linux-amd64/etcd \
      etcd-v3.6.4-linux-amd64/etcdctl \
      etcd-v3.6.4-linux-amd64/etcdutl \
 && rm /tmp/etcd.tgz

# Mooncake transfer engine at b6a841dc78c707ec655a563453277d969fb8f38d (no ROCm wheel exists).
RUN git clone https://github.com/kvcache-ai/Mooncake.git /sgl-workspace/Mooncake \
 && git -C /sgl-workspace/Mooncake checkout --detach b6a841dc78c707ec655a563453277d969fb8f38d \
 && git -C /sgl-workspace/Mooncake submodule update --init --recursive \
 && test "$(git -C /sgl-workspace/Mooncake rev-parse HEAD)" = "b6a841dc78c707ec655a563453277d969fb8f38d"
WORKDIR /sgl-workspace/Mooncake
RUN bash dependencies.sh -y \
 && cmake -S . -B build -DUSE_HIP=ON -DUSE_ETCD=ON \
 && cmake --build build -j 8 \
 && cmake --install build \
 && mkdir -p /usr/share/inferops \
 && git rev-parse HEAD > /usr/share/inferops/mooncake-commit \
 && rm -rf build yalantinglibs/build /var/lib/apt/lists/*
WORKDIR /sgl-workspace

# sglang-router 0.3.2.
RUN python3 -m pip install --no-cache-dir "sglang-router==0.3.2" \
 && python3 -m pip list > /usr/share/inferops/pip-list.txt
LABEL org.opencontainers.image.title="inferops SGLang PD serving (ROCm)" \
      org.opencontainers.image.description="SGLang (ROCm) + Mooncake (HIP, etcd) + etcd + RDMA userspace + sglang-router" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="lmsysorg/sglang:v0.5.2rc1-rocm700-mi30x" \
      io.inferops.profile="rocm" \
      io.inferops.gpu-arch="gfx942" \
      io.inferops.component.sglang="0.5.2rc1" \
      io.inferops.component.mooncake="0.3.7.post2" \
      io.inferops.component.mooncake.commit="b6a841dc78c707ec655a563453277d969fb8f38d" \
      io.inferops.component.mooncake.cmake-args="-DUSE_HIP=ON -DUSE_ETCD=ON" \
      io.inferops.component.go="1.23.8" \
      io.inferops.component.etcd="3.6.4" \
      io.inferops.component.sglang-router="0.3.2" \
      io.inferops.component.rdma-packages="rdma-core,ibverbs-utils,perftest,infiniband-diags,rdmacm-utils,librdmacm-dev,libibverbs-dev,ethtool" \
      io.inferops.component.mlnx-ofed="5.9-0.5.6.0.127"
