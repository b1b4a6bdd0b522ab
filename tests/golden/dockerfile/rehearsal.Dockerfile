# inferops rehearsal image (CPU): the rehearsal engine, the real sglang-router, Mooncake
# (non-CUDA) and the sglang bench client in a venv at /opt/pd, installed offline from the
# controller's wheelhouse; etcd from the base image's Debian packages.
# Rendered from roles/image/templates/Dockerfile.j2 (profile rehearsal): edit the template.
FROM inferops-base:0123456789ab AS deps
COPY wheels/deps/ /tmp/wheels/
RUN python3 -m venv /opt/pd \
 && /opt/pd/bin/pip install --no-index --find-links /tmp/wheels --no-cache-dir \
      --disable-pip-version-check -q -r /tmp/wheels/requirements.txt \
 && /opt/pd/bin/pip install --no-index --find-links /tmp/wheels --no-cache-dir \
      --disable-pip-version-check -q --no-deps -r /tmp/wheels/nodeps.txt \
 && rm -rf /tmp/wheels

FROM inferops-base:0123456789ab
COPY --from=deps /opt/pd /opt/pd
COPY wheels/project/ /tmp/project/
RUN /opt/pd/bin/pip install --no-index --no-cache-dir --disable-pip-version-check -q \
      --no-deps /tmp/project/*.whl \
 && mkdir -p /usr/share/inferops \
 && mv /tmp/project/manifest.json /usr/share/inferops/wheelhouse-manifest.json \
 && rm -rf /tmp/project
ENV VIRTUAL_ENV=/opt/pd PATH=/opt/pd/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HF_HUB_OFFLINE=1
LABEL org.opencontainers.image.title="inferops rehearsal (CPU PD serving rehearsal)" \
      org.opencontainers.image.description="pd_rehearsal engine, sglang-router, Mooncake (non-CUDA), sglang bench client, etcd" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="inferops-base:0123456789ab" \
      io.inferops.recipe="inferops-rehearsal/1" \
      io.inferops.profile="rehearsal" \
      io.inferops.wheelhouse="0123456789abcdef" \
      io.inferops.component.inferops-disagg="0.1.0" \
      io.inferops.component.mooncake-transfer-engine-non-cuda="0.3.13.post1" \
      io.inferops.component.sglang="0.5.2" \
      io.inferops.component.sglang-router="0.3.2" \
      io.inferops.venv="/opt/pd"
CMD ["/bin/bash"]
