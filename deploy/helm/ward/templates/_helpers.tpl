{{- define "ward.labels" -}}
app.kubernetes.io/name: ward
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ward.selectorLabels" -}}
app.kubernetes.io/name: ward
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ward.name" -}}
{{- if eq .Release.Name "ward" -}}ward{{- else -}}{{ printf "%s-ward" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "ward.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "ward.delegatedSocket" -}}
{{ trimSuffix "/" .Values.spire.agentSocketDir }}/{{ .Values.spire.adminSocketName }}
{{- end -}}
