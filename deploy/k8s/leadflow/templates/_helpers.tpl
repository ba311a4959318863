{{/* Names, labels and the pieces every service's objects share. */}}

{{- define "leadflow.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "leadflow.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "leadflow.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "leadflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: leadflow
{{- end -}}

{{/* Selector labels of one service; call with (dict "root" $ "service" "ingest"). */}}
{{- define "leadflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "leadflow.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end -}}

{{- define "leadflow.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "leadflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "leadflow.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* Hook annotations: objects the migration and topic Jobs need exist before them. */}}
{{- define "leadflow.earlyHook" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}

{{/* The environment of a Leadflow container; call with (dict "root" $ "service" "ingest" "config" $config). */}}
{{- define "leadflow.envFrom" -}}
- configMapRef:
    name: {{ include "leadflow.fullname" .root }}-common
- configMapRef:
    name: {{ include "leadflow.fullname" .root }}-{{ .service }}
- secretRef:
    name: {{ include "leadflow.fullname" .root }}-{{ .service }}
{{- if .root.Values.existingSecret }}
- secretRef:
    name: {{ .root.Values.existingSecret }}
{{- end }}
{{- end -}}

{{- define "leadflow.env" -}}
- name: LEADFLOW_DATA_DIR
  value: /tmp/leadflow
{{- if .config.databaseUrlSecret.name }}
- name: LEADFLOW_{{ upper .service }}_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .config.databaseUrlSecret.name }}
      key: {{ required (printf "services.%s.databaseUrlSecret.key is required with its name" .service) .config.databaseUrlSecret.key }}
{{- end }}
{{- end -}}

{{- define "leadflow.checkDatabase" -}}
{{- if not (or .config.databaseUrl .config.databaseUrlSecret.name) -}}
{{- fail (printf "services.%s needs databaseUrl or databaseUrlSecret: each service has a PostgreSQL database of its own" .service) -}}
{{- end -}}
{{- end -}}
