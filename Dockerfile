# Build the broker as a static binary and run it without a shell.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /broker ./cmd/broker

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /broker /broker
EXPOSE 8080
ENTRYPOINT ["/broker"]
CMD ["serve", "--config", "/etc/broker/config.yaml", "--migrate"]
