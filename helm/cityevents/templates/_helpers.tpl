{{/* The services, in start order, with the services each one calls. */}}
{{- define "cityevents.calls" -}}
auth: []
event: [auth, join, media]
join: [auth, event]
feed: [auth]
media: [auth]
mail: [auth]
bff: [auth, event, join, feed, mail, media]
{{- end }}

{{/* Services with a database of their own (all but the BFF). */}}
{{- define "cityevents.withDatabase" -}}
[auth, event, join, feed, media, mail]
{{- end }}

{{- define "cityevents.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cityevents.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* A component's object name: <fullname>-<component>. */}}
{{- define "cityevents.component" -}}
{{- printf "%s-%s" (include "cityevents.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cityevents.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cityevents.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "cityevents.labels" -}}
{{ include "cityevents.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: cityevents
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{/* Labels of objects that belong to the whole release. */}}
{{- define "cityevents.releaseLabels" -}}
app.kubernetes.io/name: {{ include "cityevents.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cityevents
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "cityevents.image" -}}
{{- $i := .Values.image -}}
{{- $repo := printf "%s/%s" $i.registry $i.repository | trimPrefix "/" -}}
{{- if $i.digest -}}
{{ $repo }}@{{ $i.digest }}
{{- else -}}
{{ $repo }}:{{ $i.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* One service's settings: `defaults` with its block laid over them (dev
mode, and media without S3: one replica, no autoscaling). Use with
fromYaml. */}}
{{- define "cityevents.settings" -}}
{{- $s := mergeOverwrite (deepCopy .root.Values.defaults) (deepCopy (index .root.Values.services .name | default dict)) -}}
{{- $single := .root.Values.dev.enabled -}}
{{- /* Media on a volume: one pod (the volume is not shared). */ -}}
{{- if and (eq .name "media") (not $s.s3.bucket) }}{{ $single = true }}{{ end -}}
{{- if $single -}}
{{- $_ := set $s "replicas" 1 -}}
{{- $_ := set $s.autoscaling "enabled" false -}}
{{- end -}}
{{- toYaml $s -}}
{{- end }}

{{/* The gRPC port (the BFF's one port also serves HTTP). */}}
{{- define "cityevents.port" -}}
{{- if eq .name "bff" }}8080{{ else }}50051{{ end -}}
{{- end }}

{{- define "cityevents.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "cityevents.fullname" .)) -}}
{{- end }}

{{/* Hosts of the data stores: the dev ones, or the configured ones. */}}
{{- define "cityevents.postgresHost" -}}
{{- if .Values.dev.enabled }}{{ include "cityevents.fullname" . }}-postgresql{{ else }}{{ .Values.postgresql.host }}{{ end -}}
{{- end }}

{{/* A service's database URL. */}}
{{- define "cityevents.databaseUrl" -}}
{{- $v := .root.Values -}}
{{- if $v.dev.enabled -}}
postgres://postgres:{{ .password }}@{{ include "cityevents.postgresHost" .root }}:5432/cityevents_{{ .name }}?sslmode=disable
{{- else -}}
postgres://{{ $v.postgresql.user | urlquery }}:{{ $v.postgresql.password | urlquery }}@{{ $v.postgresql.host }}:{{ $v.postgresql.port }}/{{ $v.postgresql.databasePrefix }}{{ .name }}?sslmode={{ $v.postgresql.sslMode }}
{{- end -}}
{{- end }}

{{/* The hardened security context of every container. */}}
{{- define "cityevents.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid | default 65532 }}
runAsGroup: {{ .uid | default 65532 }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "cityevents.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid | default 65532 }}
runAsGroup: {{ .uid | default 65532 }}
fsGroup: {{ .uid | default 65532 }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* A TOML list of key files: ["<dir>/<name>", …]. */}}
{{- define "cityevents.keyFiles" -}}
{{- $out := list -}}
{{- range .names }}{{ $out = append $out (printf "%s/%s" $.dir .) }}{{ end -}}
{{- $out | toJson -}}
{{- end }}

{{/* A service's secret settings, each from its key of the Secret. */}}
{{- define "cityevents.secretEnv" -}}
{{- $env := dict "CITYEVENTS_REDIS__URL" "redis-url" "CITYEVENTS_NATS__URL" "nats-url" -}}
{{- if ne .name "bff" }}{{ $_ := set $env "CITYEVENTS_DATABASE__URL" (printf "database-url-%s" .name) }}{{ end -}}
{{- if eq .name "feed" }}{{ $_ := set $env "CITYEVENTS_FEED__CURSOR_KEY" "feed-cursor-key" }}{{ end -}}
{{- if eq .name "mail" }}{{ $_ := set $env "CITYEVENTS_MAIL__UNSUBSCRIBE_KEY" "mail-unsubscribe-key" }}{{ end -}}
{{- if eq .name "media" }}{{ $_ := set $env "CITYEVENTS_MEDIA__URL_KEYS" "media-url-keys" }}{{ end -}}
{{- range $var, $key := $env }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $.secret }}
      key: {{ $key }}
{{- end }}
{{- if eq .name "mail" }}
- name: CITYEVENTS_SMTP__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: smtp-password
      optional: true
{{- end }}
{{- if eq .name "media" }}
- name: CITYEVENTS_MEDIA__S3__ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: s3-access-key-id
      optional: true
- name: CITYEVENTS_MEDIA__S3__SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: s3-secret-access-key
      optional: true
{{- end }}
{{- end }}

{{/* An egress rule to a data store: the dev store's pods, or the peers
configured under networkPolicy.egress.<store> (none: anywhere), on its
ports. */}}
{{- define "cityevents.egress" -}}
{{- $peers := index .root.Values.networkPolicy.egress .store -}}
{{- $dev := and .root.Values.dev.enabled (has .store (list "postgresql" "redis" "nats")) -}}
- ports:
    {{- range (uniq .ports) }}
    - {protocol: TCP, port: {{ . }}}
    {{- end }}
  {{- if $dev }}
  to:
    - podSelector:
        matchLabels:
          {{- include "cityevents.selectorLabels" (dict "root" .root "name" .store) | nindent 10 }}
  {{- else if $peers }}
  to:
    {{- toYaml $peers | nindent 4 }}
  {{- end }}
{{- end }}
