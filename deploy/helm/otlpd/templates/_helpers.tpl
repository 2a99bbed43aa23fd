{{/* Names, labels and the rendered otlpd config. */}}

{{- define "otlpd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "otlpd.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "otlpd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "otlpd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "otlpd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "otlpd.labels" -}}
helm.sh/chart: {{ include "otlpd.chart" . }}
{{ include "otlpd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: otlpd
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "otlpd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "otlpd.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "otlpd.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "otlpd.terminationGracePeriodSeconds" -}}
{{- $min := add .Values.preStopSleepSeconds .Values.shutdownTimeoutSeconds }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $min 10 }}
{{- else }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $min) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed preStopSleepSeconds + shutdownTimeoutSeconds (%v)" .Values.terminationGracePeriodSeconds $min) }}
{{- end }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
The otlpd config (docs/configuration.md), built from values and then deep-merged with
.Values.config. `otlpd validate` accepts it (tests/deploy checks every rendering).
*/}}
{{- define "otlpd.config" -}}
{{- $v := .Values }}
{{- $protocols := dict }}
{{- if $v.receiver.grpc.enabled }}
{{- $keepalive := dict "server_parameters" (dict "max_connection_age" $v.receiver.grpc.maxConnectionAge "max_connection_age_grace" $v.receiver.grpc.maxConnectionAgeGrace) }}
{{- $_ := set $protocols "grpc" (dict "endpoint" (printf "0.0.0.0:%v" $v.ports.otlpGrpc) "max_recv_msg_size_mib" $v.receiver.grpc.maxRecvMsgSizeMib "keepalive" $keepalive) }}
{{- end }}
{{- if $v.receiver.http.enabled }}
{{- $http := dict "endpoint" (printf "0.0.0.0:%v" $v.ports.otlpHttp) "max_request_body_size" $v.receiver.http.maxRequestBodySize }}
{{- with $v.receiver.http.corsAllowedOrigins }}
{{- $_ := set $http "cors" (dict "allowed_origins" .) }}
{{- end }}
{{- $_ := set $protocols "http" $http }}
{{- end }}
{{- $batch := dict "send_batch_size" $v.batch.sendBatchSize "send_batch_max_size" $v.batch.sendBatchMaxSize "timeout" $v.batch.timeout }}
{{- $exporters := dict }}
{{- $names := list }}
{{- if $v.upstream.enabled }}
{{- $up := $v.upstream }}
{{- $exporter := dict "endpoint" $up.endpoint "compression" $up.compression "timeout" $up.timeout }}
{{- if $up.insecure }}
{{- $_ := set $exporter "tls" (dict "insecure" true) }}
{{- end }}
{{- $_ := set $exporter "sending_queue" (dict "enabled" $up.sendingQueue.enabled "num_consumers" $up.sendingQueue.numConsumers "queue_size" $up.sendingQueue.queueSize) }}
{{- $_ := set $exporter "retry_on_failure" (dict "enabled" $up.retryOnFailure.enabled "initial_interval" $up.retryOnFailure.initialInterval "max_interval" $up.retryOnFailure.maxInterval "max_elapsed_time" $up.retryOnFailure.maxElapsedTime) }}
{{- if $up.apiKey.enabled }}
{{- $_ := set $exporter "headers" (dict $up.apiKey.header (ternary "${env:OTLPD_API_KEY:-}" "${env:OTLPD_API_KEY}" $up.apiKey.optional)) }}
{{- end }}
{{- $name := ternary "otlphttp/upstream" "otlp/upstream" (eq $up.protocol "http") }}
{{- $_ := set $exporters $name $exporter }}
{{- $names = append $names $name }}
{{- end }}
{{- if $v.debugExporter.enabled }}
{{- $_ := set $exporters "debug" (dict "verbosity" $v.debugExporter.verbosity "sampling_initial" $v.debugExporter.samplingInitial "sampling_thereafter" $v.debugExporter.samplingThereafter) }}
{{- $names = append $names "debug" }}
{{- end }}
{{- $pipelines := dict }}
{{- if $names }}
{{- range $signal := list "traces" "metrics" "logs" }}
{{- $_ := set $pipelines $signal (dict "receivers" (list "otlp") "processors" (list "batch") "exporters" $names) }}
{{- end }}
{{- end }}
{{- $service := dict "pipelines" $pipelines "http" (dict "endpoint" (printf "0.0.0.0:%v" $v.ports.admin)) "shutdown_timeout" (printf "%vs" $v.shutdownTimeoutSeconds) "workers" $v.workers "telemetry" (dict "logs" (dict "level" $v.log.level "encoding" $v.log.format)) }}
{{- $config := dict "receivers" (dict "otlp" (dict "protocols" $protocols)) "processors" (dict "batch" $batch) "exporters" $exporters "service" $service }}
{{- if $v.healthCheckExtension.enabled }}
{{- $_ := set $config "extensions" (dict "health_check" (dict "endpoint" (printf "0.0.0.0:%v" $v.healthCheckExtension.port))) }}
{{- $_ := set $service "extensions" (list "health_check") }}
{{- end }}
{{- $config = mustMergeOverwrite $config (deepCopy $v.config) }}
{{- toYaml $config }}
{{- end }}
