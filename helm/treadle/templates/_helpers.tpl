{{/* Names, labels, environment and pod parts every template shares. */}}

{{- define "treadle.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's prefix for every object: the release name, with the chart's unless it has it. */}}
{{- define "treadle.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "treadle.selectorLabels" -}}
app.kubernetes.io/name: {{ include "treadle.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of every object: call with (dict "root" $ "component" "scheduler"). */}}
{{- define "treadle.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "treadle.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: treadle
{{- end -}}

{{- define "treadle.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* A secretKeyRef: (dict "root" $ "ref" .Values.secrets.databaseUrl "what" "secrets.databaseUrl" "variable" "TREADLE_DATABASE_URL") */}}
{{- define "treadle.secretKeyRef" -}}
name: {{ required (printf "%s.secretName (or secrets.existingSecret) is required: the Secret holding %s" .what .variable) (.ref.secretName | default .root.Values.secrets.existingSecret) }}
key: {{ required (printf "%s.key is required" .what) .ref.key }}
{{- end -}}

{{/* The pack folders a process loads besides the shipped packs, as JSON. */}}
{{- define "treadle.packPaths" -}}
{{- $paths := list -}}
{{- if .Values.packs.files -}}
{{- $paths = append $paths .Values.packs.mountPath -}}
{{- end -}}
{{- toJson (concat $paths .Values.packs.paths) -}}
{{- end -}}

{{/*
Schema upgrade at start: OFF in every service that opens the database. Only the migrations
Job (migrations-job.yaml) upgrades the schema; the services refuse an older schema and wait
for it (TREADLE_SCHEMA_UPGRADE=wait, common/settings.py). schemaUpgradeAtStart: true gives
them back the upgrade at start (auto).
*/}}
{{- define "treadle.env.schemaUpgrade" }}
- name: TREADLE_SCHEMA_UPGRADE
  value: {{ ternary "auto" "wait" .Values.schemaUpgradeAtStart | quote }}
{{- end -}}

{{/*
The environment of a Treadle container: (dict "root" $ "needs" (list "database" "broker"
"secretKey" "goldenKey" "packs" "schema")), each only where the process uses it.
*/}}
{{- define "treadle.env" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
{{- range $name, $value := $values.settings }}
- name: {{ printf "TREADLE_%s" (upper $name) }}
  value: {{ ternary $value (toJson $value) (kindIs "string" $value) | quote }}
{{- end }}
{{- if has "database" .needs }}
- name: TREADLE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- include "treadle.secretKeyRef" (dict "root" $root "ref" $values.secrets.databaseUrl "what" "secrets.databaseUrl" "variable" "TREADLE_DATABASE_URL") | nindent 6 }}
{{- end }}
{{- if has "broker" .needs }}
- name: TREADLE_BROKER_URL
  valueFrom:
    secretKeyRef:
      {{- include "treadle.secretKeyRef" (dict "root" $root "ref" $values.secrets.brokerUrl "what" "secrets.brokerUrl" "variable" "TREADLE_BROKER_URL") | nindent 6 }}
{{- end }}
{{- if has "secretKey" .needs }}
- name: TREADLE_SECRET_KEY
  valueFrom:
    secretKeyRef:
      {{- include "treadle.secretKeyRef" (dict "root" $root "ref" $values.secrets.secretKey "what" "secrets.secretKey" "variable" "TREADLE_SECRET_KEY") | nindent 6 }}
{{- end }}
{{- if and (has "goldenKey" .needs) $values.secrets.goldenKey.secretName }}
- name: TREADLE_GOLDEN_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $values.secrets.goldenKey.secretName }}
      key: {{ $values.secrets.goldenKey.key }}
{{- end }}
{{- if and (has "packs" .needs) (or $values.packs.files $values.packs.paths) }}
- name: TREADLE_PACK_PATHS
  value: {{ include "treadle.packPaths" $root | quote }}
{{- end }}
{{- if has "schema" .needs }}
{{- include "treadle.env.schemaUpgrade" $root }}
{{- end }}
{{- with $values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod-level fields every Treadle pod shares. */}}
{{- define "treadle.podCommon" -}}
automountServiceAccountToken: false
{{- if or .Values.serviceAccount.create .Values.serviceAccount.name }}
serviceAccountName: {{ .Values.serviceAccount.name | default (include "treadle.fullname" .) }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The pod's volumes: a writable /tmp, the packs ConfigMap (when loads is true), extras. */}}
{{- define "treadle.volumes" -}}
{{- $root := .root -}}
volumes:
  - name: tmp
    emptyDir: {}
{{- if and .packs $root.Values.packs.files }}
  - name: packs
    configMap:
      name: {{ include "treadle.fullname" $root }}-packs
      items:
        {{- range $path, $_ := $root.Values.packs.files }}
        - key: {{ include "treadle.packKey" $path }}
          path: {{ $path }}
        {{- end }}
{{- end }}
{{- with $root.Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "treadle.volumeMounts" -}}
{{- $root := .root -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- if and .packs $root.Values.packs.files }}
  - name: packs
    mountPath: {{ $root.Values.packs.mountPath }}
    readOnly: true
{{- end }}
{{- with $root.Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A ConfigMap key for a pack file's path (keys cannot hold "/"). */}}
{{- define "treadle.packKey" -}}
{{- printf "%s-%s" (sha256sum . | trunc 10) (regexReplaceAll "[^-._a-zA-Z0-9]" (base .) "_") -}}
{{- end -}}

{{/* Annotations that restart pods when their packs change. */}}
{{- define "treadle.podAnnotations" -}}
{{- $annotations := deepCopy .root.Values.podAnnotations -}}
{{- if .packs -}}
{{- $_ := set $annotations "checksum/packs" (toJson .root.Values.packs.files | sha256sum) -}}
{{- end -}}
annotations:
{{- if $annotations }}
  {{- toYaml $annotations | nindent 2 }}
{{- else }} {}
{{- end }}
{{- end -}}

{{/* The probes of a service checked by `treadle health <service>`. */}}
{{- define "treadle.healthProbes" -}}
{{- $probes := .root.Values.probes -}}
{{- $exec := dict "exec" (dict "command" (list "treadle" "health" .service)) -}}
startupProbe:
  {{- toYaml $exec | nindent 2 }}
  periodSeconds: 10
  timeoutSeconds: {{ $probes.timeoutSeconds }}
  failureThreshold: {{ $probes.startupFailureThreshold }}
livenessProbe:
  {{- toYaml $exec | nindent 2 }}
  periodSeconds: {{ $probes.periodSeconds }}
  timeoutSeconds: {{ $probes.timeoutSeconds }}
  failureThreshold: {{ $probes.failureThreshold }}
readinessProbe:
  {{- toYaml $exec | nindent 2 }}
  periodSeconds: {{ $probes.periodSeconds }}
  timeoutSeconds: {{ $probes.timeoutSeconds }}
  failureThreshold: {{ $probes.failureThreshold }}
{{- end -}}

{{/* The container's common fields: image, security context. */}}
{{- define "treadle.containerCommon" -}}
image: {{ include "treadle.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end -}}

{{/* The metrics options of `treadle scheduler|beat|worker`. */}}
{{- define "treadle.metricsArgs" -}}
{{- if .Values.metrics.enabled }}
- --metrics-address
- 0.0.0.0
- --metrics-port
- {{ .Values.metrics.port | quote }}
{{- end }}
{{- end -}}

{{- define "treadle.metricsPort" -}}
{{- if .Values.metrics.enabled }}
ports:
  - name: metrics
    containerPort: {{ .Values.metrics.port }}
    protocol: TCP
{{- end }}
{{- end -}}

{{/* A worker group with the defaults under it: (dict "root" $ "name" "gpu" "group" {...}), as YAML. */}}
{{- define "treadle.workerGroup" -}}
{{- $defaults := .root.Values.worker.defaults -}}
{{- $group := deepCopy $defaults -}}
{{- range $key, $value := (.group | default dict) -}}
{{- if and (kindIs "map" $value) (kindIs "map" (index $defaults $key)) -}}
{{- $merged := deepCopy (index $defaults $key) -}}
{{- range $k, $v := $value -}}
{{- $_ := set $merged $k $v -}}
{{- end -}}
{{- $_ := set $group $key $merged -}}
{{- else -}}
{{- $_ := set $group $key $value -}}
{{- end -}}
{{- end -}}
{{- $_ := set $group "name" .name -}}
{{- toYaml $group -}}
{{- end -}}

{{/* A worker group's queues: its own, else the default queue. */}}
{{- define "treadle.workerQueues" -}}
{{- $queues := .group.queues | default (list (.root.Values.settings.default_queue | default "treadle.tasks")) -}}
{{- join "," $queues -}}
{{- end -}}

{{/* Where a component's pods go: its nodeSelector, tolerations and affinity. */}}
{{- define "treadle.placement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
